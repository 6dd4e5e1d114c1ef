"""What every dialect shares, so no dialect solves it in its own way:

* :mod:`.fields` reads client JSON (one error message style, one rule per type);
* :mod:`.extras` keeps fields the IR does not model and the request's original form;
* :mod:`.durations` reads every retry hint (``Retry-After``, "try again in 2s",
  Google ``RetryInfo``, Codex quota resets) the same way;
* :mod:`.media` handles base64 (standard and URL-safe), data URLs, type sniffing, sizes;
* :mod:`.stream` holds the part bookkeeping of decoders and the encoder base;
* :mod:`.adapter` wraps a dialect's codec so that faults never become a 500.
"""
