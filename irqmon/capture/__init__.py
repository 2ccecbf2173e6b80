"""Capturing a trace: `session` turns a `CaptureRequest` into a capture, `registry` finds the
backends, `loop` is the hot loop that turns every stop into trace rows, `status` shows it."""
