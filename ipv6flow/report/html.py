"""HTML report (being written)."""


def render(report):
    raise NotImplementedError
