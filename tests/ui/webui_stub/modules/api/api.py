"""The WebUI's own API authentication, as AUTOMATIC1111 1.10.1 and Forge (dfdcbab6) do it (subset).

``modules/api/api.py``: with ``--api-auth "u1:p1,u2:p2"`` the ``Api`` object reads the pairs into a dict, and
every route it adds through its own ``add_api_route`` gets ``dependencies=[Depends(self.auth)]``, where ``auth``
takes ``HTTPBasicCredentials`` from ``HTTPBasic()`` and compares the password with ``secrets.compare_digest``;
a failure is ``HTTPException(401, "Incorrect username or password", {"WWW-Authenticate": "Basic"})``.
Routes an extension adds to the app itself are not covered by it.
"""

from secrets import compare_digest

from fastapi import Depends, HTTPException
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from modules import shared


class Api:
    def __init__(self, app):
        self.app = app
        if shared.cmd_opts.api_auth:
            self.credentials = {}
            for pair in shared.cmd_opts.api_auth.split(","):
                user, password = pair.split(":")
                self.credentials[user] = password
        self.add_api_route("/sdapi/v1/options", self.get_config, methods=["GET"])

    def add_api_route(self, path, endpoint, **kwargs):
        if shared.cmd_opts.api_auth:
            return self.app.add_api_route(path, endpoint, dependencies=[Depends(self.auth)], **kwargs)
        return self.app.add_api_route(path, endpoint, **kwargs)

    def auth(self, credentials: HTTPBasicCredentials = Depends(HTTPBasic())):
        if credentials.username in self.credentials:
            if compare_digest(credentials.password, self.credentials[credentials.username]):
                return True
        raise HTTPException(status_code=401, detail="Incorrect username or password",
                            headers={"WWW-Authenticate": "Basic"})

    def get_config(self):
        return dict(shared.opts.data)
