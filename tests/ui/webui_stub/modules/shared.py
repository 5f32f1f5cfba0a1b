"""``opts``, ``OptionInfo``, ``state`` and ``cmd_opts`` as AUTOMATIC1111 1.10 has them (subset)."""

from types import SimpleNamespace


class OptionInfo:
    def __init__(self, default=None, label="", component=None, component_args=None, onchange=None, section=None,
                 refresh=None, comment_before="", comment_after="", infotext=None, restrict_api=False, category_id=None):
        self.default, self.label, self.component, self.component_args = default, label, component, component_args
        self.onchange, self.section, self.category_id = onchange, section, category_id


class Options:
    def __init__(self):
        object.__setattr__(self, "data", {})
        object.__setattr__(self, "data_labels", {})
        object.__setattr__(self, "changes", [])

    def add_option(self, key, info):
        self.data_labels[key] = info
        if key not in self.data:
            self.data[key] = info.default

    def __getattr__(self, key):
        if key in self.data:
            return self.data[key]
        if key in self.data_labels:
            return self.data_labels[key].default
        raise AttributeError(key)

    def set(self, key, value, is_api=False, run_callbacks=True):
        self.data[key] = value
        self.changes.append((key, value))
        return True


class State:
    def __init__(self):
        self.interrupted = False
        self.job = ""
        self.job_count = 0
        self.job_no = 0
        self.sampling_step = 0
        self.sampling_steps = 0
        self.textinfo = None
        self.history = []

    def begin(self, job="(unknown)"):
        self.job, self.job_count, self.job_no, self.interrupted = job, -1, 0, False
        self.sampling_step, self.sampling_steps, self.textinfo = 0, 0, None

    def end(self):
        self.job, self.job_count = "", 0

    def interrupt(self):
        self.interrupted = True


opts = Options()
state = State()
cmd_opts = SimpleNamespace(ckpt_dir=None, vae_dir=None, lora_dir=None, api_auth=None, cors_allow_origins=None,
                           cors_allow_origins_regex=None)
