"""Isolated plugins: one sandboxed worker process per plugin (``pm.load(..., isolated=True)``).

- ``runtime``  — the kernel's side: load, the hook seam, calls, checkpoints, reloads
- ``supervise`` — crashes: notice, report, restart with state, crash loop
- ``remote``   — a worker's error reply as an exception of the kernel's own making
- ``process``  — spawning a worker, the call channel, pidfd death notices
- ``protocol`` — 4-byte length + MessagePack frames, bounded, never pickle
- ``proxy``    — what ``pm.get(name)`` returns
- ``static``   — metadata read from source text (the plugin's code never runs in the kernel)
- ``main``     — the worker process itself
- ``sandbox/`` — one module per OS layer: rlimits, userns/netns, Landlock, seccomp, cgroup

Imported only when a plugin is loaded isolated: ``import flx_ipy`` does not start anything.
"""
