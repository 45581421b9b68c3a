"""Isolated plugins: one sandboxed worker process per plugin (``pm.load(..., isolated=True)``).

- ``host``     — what this package needs from the manager (a protocol: it never imports it)
- ``runner``   — isolated plugins' hooks at the manager's hook-call seam (``pm.hooks``)
- ``runtime``  — the kernel's side: load, the hook steps, calls, checkpoints, reloads
- ``supervise`` — crashes: notice, report, restart with state, crash loop
- ``remote``   — a worker's error reply as an exception of the kernel's own making
- ``process``  — spawning a worker, the call channel, pidfd death notices
- ``protocol`` — 4-byte length + MessagePack frames, bounded, never pickle
- ``proxy``    — what ``pm.get(name)`` returns
- ``static``   — metadata read from source text (the plugin's code never runs in the kernel)
- ``main``     — the worker process itself
- ``sandbox/`` — one module per OS layer: rlimits, userns/netns, Landlock, seccomp, cgroup

The manager imports this package (it sits below the manager in the core's stack), but nothing
here starts a process or a thread until a plugin is loaded isolated; ``main`` (the worker's
program) sits above the manager and is imported only in a worker.
"""
