"""What irqmon knows of the Cortex-M core, whatever the way to reach it: debug and system
register addresses and bits, exception numbers and names, breakpoint and watchpoint ids, the
registers a GDB stub describes, Thumb decoding, the firmware's ELF and unwinding its stack.

The backends and the capture loop use it; nothing here imports a backend.
"""
