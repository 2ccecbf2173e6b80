"""Built-in rules, one module each: `RULE` and `check(ctx) -> list[Finding]`."""
