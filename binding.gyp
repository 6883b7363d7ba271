{
  # Builds the SDK bridge as an ordinary Node addon (build/Release/sdk_bridge.node)
  # over a stand-in plugin context, so that unit tests exercise its marshalling,
  # async REST calls, errors and calls into JS from other threads in plain Node.
  "targets": [
    {
      "target_name": "sdk_bridge",
      "sources": [
        "native/sdk_bridge.cpp",
        "native/js_dispatcher.cpp",
        "native/stores_in_progress.cpp",
        "native/test_addon.cpp"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": ["NAPI_VERSION=9", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17"]
    }
  ]
}
