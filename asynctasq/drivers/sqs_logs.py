"""Masking AWS credentials in botocore's and aiobotocore's own log lines.

At DEBUG, ``botocore.endpoint`` logs every request with its headers, whose ``Authorization``
value names the access key id (``Credential=AKID.../date/region/sqs/aws4_request``).
:class:`Mask`, a logging filter installed on those libraries' loggers (:data:`LOGGERS`) by
the first SQS driver that opens, rewrites such a record with the ``Credential=``, the
signature, the ``Authorization`` value and any ``X-Amz-Security-Token`` shown as ``***``.
"""

from __future__ import annotations

import logging
import re

LOGGERS = (
    "botocore.endpoint",
    "botocore.auth",
    "botocore.awsrequest",
    "botocore.httpsession",
    "botocore.credentials",
    "botocore.hooks",
    "botocore.parsers",
    "aiobotocore.endpoint",
    "aiobotocore.httpsession",
    "aiobotocore.credentials",
)
"""The loggers the filter is installed on (a logger's filter does not see its children)."""

SECRETS = re.compile(
    r"(Credential=|Signature=|X-Amz-Security-Token['\"]?\s*[:=]\s*b?['\"]?"
    r"|Authorization['\"]?\s*[:=]\s*b?['\"]?)[^'\"\s,>]+",
    re.IGNORECASE,
)
"""What is masked: the text after each of these, up to a quote, space, comma or ``>``."""


class Mask(logging.Filter):
    """Replace credentials in a record's message by ``***``; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Return ``True``, with ``record``'s message masked when it shows credentials."""
        text = record.getMessage()
        masked = SECRETS.sub(r"\1***", text)
        if masked != text:
            record.msg, record.args = masked, None
        return True


MASK = Mask()


def install() -> None:
    """Install :data:`MASK` on every logger of :data:`LOGGERS` (once; idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if MASK not in logger.filters:
            logger.addFilter(MASK)
