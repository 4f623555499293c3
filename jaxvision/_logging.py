"""The ``jaxvision`` logger's default handler: progress lines in plain Python and notebooks.

A library should not configure logging, yet a user who runs ``train_and_evaluate`` from a
script or a notebook must see progress. So the ``jaxvision`` logger (level INFO) carries one
handler, and passes its records on itself instead of by propagation:

* when the application configured logging (the root logger has a handler of its own), the
  records go to the root logger's handlers, exactly as propagation would deliver them;
* otherwise they print on the current ``sys.stderr`` (notebooks replace it). absl, which
  TFDS and Orbax log through, installs a bare ``logging.basicConfig()`` handler on the root
  logger whenever it finds none; such a handler does not count as the application's choice.

Nothing prints twice. Turn it off with ``jaxvision.train.progress.disable_default_handler()``
(jaxvision's records then propagate like any library's), or keep only warnings with
``logging.getLogger("jaxvision").setLevel(logging.WARNING)``.
"""

from __future__ import annotations

import contextlib
import logging
import sys

LOGGER = "jaxvision"


def _is_automatic(handler: logging.Handler) -> bool:
    """A placeholder, or the handler a bare ``logging.basicConfig()`` makes (absl's)."""
    if isinstance(handler, logging.NullHandler):
        return True
    formatter = handler.formatter
    return (type(handler) is logging.StreamHandler and formatter is not None
            and formatter._fmt == logging.BASIC_FORMAT)


def application_configured_logging() -> bool:
    """Whether the root logger has a handler the application chose."""
    return any(not _is_automatic(h) for h in logging.getLogger().handlers)


class DefaultHandler(logging.StreamHandler):
    """Hands records to the application's root handlers if it has any, else prints them to
    ``sys.stderr`` (looked up per record)."""

    def __init__(self):
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))

    def handle(self, record: logging.LogRecord) -> bool:
        if application_configured_logging():
            # Handlers that sit on jaxvision's loggers too (pytest attaches its capture
            # handlers to non-propagating loggers) have had the record already.
            seen = _handlers_between(record.name)
            for handler in logging.getLogger().handlers:
                if handler not in seen and record.levelno >= handler.level:
                    handler.handle(record)
            return True
        if self.stream is not sys.stderr:
            self.setStream(sys.stderr)
        return super().handle(record)


def _handlers_between(name: str) -> set:
    """The handlers of the loggers from ``name`` up to ``jaxvision``."""
    handlers = set()
    while name:
        handlers.update(logging.getLogger(name).handlers)
        if name == LOGGER:
            break
        name = name.rpartition(".")[0]
    return handlers


def install_default_handler() -> None:
    """Adds the default handler (once) and sets the ``jaxvision`` logger to INFO unless the
    user set its level."""
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(h, DefaultHandler) for h in logger.handlers):
        logger.addHandler(DefaultHandler())
        logger.propagate = False  # the handler passes records on (see the module docstring)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def disable_default_handler() -> None:
    """Removes the default handler: jaxvision's records then propagate to the application's
    logging configuration (or Python's last-resort handler: warnings and errors only)."""
    logger = logging.getLogger(LOGGER)
    for handler in [h for h in logger.handlers if isinstance(h, DefaultHandler)]:
        logger.removeHandler(handler)
    logger.propagate = True


@contextlib.contextmanager
def quiet_absl(level: int = logging.ERROR):
    """For the block: absl's Python log lines (TFDS, Orbax) below ``level`` held back, and
    absl kept from configuring the root logger (it calls ``logging.basicConfig()`` whenever the
    root logger has no handler; a placeholder ``NullHandler`` stands there for the block), so
    that calling into those libraries leaves the application's logging as it was and
    jaxvision's default handler in charge."""
    absl_logger = logging.getLogger("absl")
    root = logging.getLogger()
    saved_level = absl_logger.level
    placeholder = None
    if not root.handlers:
        placeholder = logging.NullHandler()
        root.addHandler(placeholder)
    absl_logger.setLevel(max(level, absl_logger.getEffectiveLevel()))
    try:
        yield
    finally:
        absl_logger.setLevel(saved_level)
        if placeholder is not None:
            root.removeHandler(placeholder)
