"""Many traces at once: each trace analysed on its own (in-process or as a Dask task), the
findings merged by fingerprint across traces.

The per-trace task (`task.analyze_trace_file`) returns plain, picklable values, so the same
code runs in this process or on any Dask worker that has irqmon installed.
"""
