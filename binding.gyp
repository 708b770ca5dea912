# node-gyp build of the addon, for machines without CMake: the CPU backend only (CUDA needs the
# CMake build). scripts/install.js picks cmake-js when CMake is present and this file otherwise;
# CBLOSS_BUILD=node-gyp forces it.
{
  "variables": {
    "cbloss_common_defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "CBLOSS_CUDA_ENABLED=0"],
    "cbloss_cflags": ["-std=c++17", "-fexceptions", "-O3", "-ffp-contract=fast", "-Wall", "-Wextra", "-Werror=switch", "-Werror=missing-field-initializers"]
  },
  "target_defaults": {
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
    "defines": ["<@(cbloss_common_defines)"],
    "cflags!": ["-fno-exceptions", "-std=gnu++1y", "-std=gnu++17"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++1y", "-std=gnu++17"],
    "cflags_cc": ["<@(cbloss_cflags)"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "OTHER_CPLUSPLUSFLAGS": ["-O3", "-ffp-contract=fast"]
    },
    "conditions": [
      ["target_arch=='x64' or target_arch=='ia32'", { "defines": ["CBLOSS_X86=1"] }]
    ]
  },
  "targets": [
    {
      "target_name": "cbloss_avx2",
      "type": "static_library",
      "conditions": [
        ["target_arch=='x64' or target_arch=='ia32'", {
          "sources": ["native/cpu/kernels_avx2.cpp"],
          "cflags_cc": ["-mavx2", "-mfma"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-mavx2", "-mfma"] }
        }]
      ]
    },
    {
      "target_name": "cbloss_avx512",
      "type": "static_library",
      "conditions": [
        ["target_arch=='x64' or target_arch=='ia32'", {
          "sources": ["native/cpu/kernels_avx512.cpp"],
          "cflags_cc": ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma", "-mprefer-vector-width=512"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma"] }
        }]
      ]
    },
    {
      "target_name": "cbloss",
      "sources": [
        "native/binding/addon.cpp",
        "native/binding/call.cpp",
        "native/binding/run.cpp",
        "native/binding/device_memory.cpp",
        "native/binding/info.cpp",
        "native/cpu/losses_cpu.cpp",
        "native/cpu/thread_pool.cpp",
        "native/cpu/kernels_vec128.cpp",
        "native/cuda/probe_none.cpp"
      ],
      "dependencies": ["cbloss_avx2", "cbloss_avx512"],
      "libraries": ["-lpthread"]
    }
  ]
}
