"""Data that ships with irqmon, found through `importlib.resources`: `probes/` (the built-in probe
packs) and `dashboards/` (the report layouts). In the repository both are links to the
top-level folders of the same names; a wheel holds copies."""
