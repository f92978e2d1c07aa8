{
  "targets": [
    {
      "target_name": "shuma_spawner",
      "sources": ["native/module.c", "native/addon.c", "native/js-values.c", "native/exit-watch.c", "native/exec-watch.c", "native/output-watch.c", "native/watch-set.c", "native/launch-child.c", "native/launch-cpu.c", "native/spawn-thread.c", "native/relaunch.c", "native/flow-pump.c", "native/flow-pump-thread.c", "native/flow-pump-calls.c", "native/flow-fanout.c", "native/flow-fanout-calls.c", "native/capture-ring.c", "native/thread-end.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "ldflags": ["-Wl,-z,now"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    },
    {
      "target_name": "shuma_notify",
      "sources": ["native/notify-socket.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    },
    {
      "target_name": "shuma_salloc_report",
      "type": "executable",
      "sources": ["native/salloc-report.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "conditions": [
        ["OS!='linux'", {"type": "none"}],
        ["OS=='linux' and (target_arch=='x64' or target_arch=='arm64')", {
          "defines": ["SHUMA_NOLIBC"],
          "cflags": ["-ffreestanding", "-fno-tree-loop-distribute-patterns", "-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-fno-pie"],
          "ldflags": ["-nostdlib", "-static", "-no-pie"]
        }]
      ]
    }
  ]
}
