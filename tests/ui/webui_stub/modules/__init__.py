"""A stand-in for the WebUI's ``modules`` package: just the names Model Doctor's adapter uses,
behaving as AUTOMATIC1111 1.10 documents them. Tests configure it through its attributes."""
