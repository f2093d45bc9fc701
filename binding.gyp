# The `npm install` build. Sources come from native/sources.json, shared with CMakeLists.txt.
{
  "targets": [
    {
      "target_name": "nodenet",
      "sources": [
        "<!@(node -p \"const s = require('./native/sources.json'); s.kernel.concat(s.addon).join(' ')\")"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "cflags_cc": [
        "-std=c++17",
        "-fexceptions",
        "-Wall",
        "-Wextra",
        "<!@(node -p \"require('./native/sources.json').libraries.join(' ')\" | xargs pkg-config --cflags)"
      ],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODENET_VERSION=\"<!(node -p \"require('./package.json').version\")\"",
        "NODENET_LIBIPTC_VERSION=\"<!(pkg-config --modversion libip4tc)\"",
        "NODENET_LIBNFTNL_VERSION=\"<!(pkg-config --modversion libnftnl)\"",
        "NODENET_LIBMNL_VERSION=\"<!(pkg-config --modversion libmnl)\""
      ],
      "libraries": [
        "<!@(node -p \"require('./native/sources.json').libraries.join(' ')\" | xargs pkg-config --libs)"
      ]
    }
  ]
}
