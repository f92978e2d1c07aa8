{
  "targets": [
    {
      "target_name": "shuma_spawner",
      "sources": ["native/addon.c", "native/exit-watch.c", "native/launch-child.c", "native/spawn-thread.c", "native/flow-pump.c", "native/capture-ring.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    },
    {
      "target_name": "shuma_notify",
      "sources": ["native/notify-socket.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
