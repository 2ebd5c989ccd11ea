"""Every line a service logs is JSON: FastStream's own lines go through aqsha's formatter.

FastStream gives its app logger (``FastStream app starting...``) and its Kafka broker's logger
(``Consumer ... assigned to partitions``) plain-text, ANSI-coloured handlers of their own. The
services hand FastStream those loggers without handlers (``shared.logging.faststream_logger``), and
``configure_logging`` takes over the ones FastStream made at import. ``make run``'s e2e tests check
the real ``.run/logs/*.log`` line by line.
"""

from __future__ import annotations

import io
import json
import logging
import warnings

import pytest
from faststream import FastStream
from faststream._internal.context import ContextRepo

from shared.kafka import broker_factory
from shared.logging import FASTSTREAM_LOGGERS, configure_logging, faststream_logger
from shared.settings import KafkaSettings

pytestmark = pytest.mark.unit


def test_faststream_lines_are_json_like_every_other() -> None:
    import faststream._internal.logger as fs_logging

    stream = io.StringIO()
    # An earlier test may have left logging's warning capture on while pytest's own per-test
    # catch_warnings reset warnings.showwarning: start from "off", as a fresh service process does.
    logging.captureWarnings(False)
    handler = configure_logging("billing", "INFO", stream=stream)
    try:
        broker = broker_factory(KafkaSettings(bootstrap="127.0.0.1:1"))
        state = broker.config.logger
        state._setup(ContextRepo())  # what the broker does when it starts
        state.log("Consumer aqsha-billing-1 assigned to partitions: (...)", logging.INFO)
        state.log("a per-message line (DEBUG: not shown at INFO)")
        app = FastStream(broker, logger=faststream_logger())
        assert app.logger is logging.getLogger("faststream")
        app.logger.info("FastStream app starting...")
        fs_logging.logger.warning("Auto create topics is disabled.")  # the one FastStream made at import
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("a library's deprecation", DeprecationWarning, stacklevel=1)
        lines = stream.getvalue().splitlines()
        records = [json.loads(line) for line in lines]
        assert [(r["logger"], r["message"]) for r in records[:3]] == [
            ("faststream.access.kafka", "Consumer aqsha-billing-1 assigned to partitions: (...)"),
            ("faststream", "FastStream app starting..."),
            ("faststream", "Auto create topics is disabled."),
        ]
        assert records[3]["logger"] == "py.warnings"
        assert len(records) == 4
        assert all(r["service"] == "billing" for r in records)
        assert "\x1b[" not in stream.getvalue()  # no ANSI colours
        for name in FASTSTREAM_LOGGERS:
            logger = logging.getLogger(name)
            assert logger.propagate, name
            assert not [h for h in logger.handlers if not getattr(h, "_aqsha", False)], name
    finally:
        logging.getLogger().removeHandler(handler)
        logging.captureWarnings(False)
