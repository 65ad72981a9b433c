// swift-tools-version: 6.1
// Benchmarks for nvmegate's decision path, in their own package so the library's manifest
// never depends on the benchmark stack (the pattern swift-nio and swift-foundation use).
//
//   cd Benchmarks && swift package benchmark            (see README.md)
import PackageDescription

let package = Package(
    name: "nvmegate-benchmarks",
    dependencies: [
        // The parent package by path. Its identity is its folder's name, which differs between
        // checkouts (main, a worktree, CI's clone), so name it explicitly.
        .package(name: "nvmegate", path: ".."),
        // MallocInterposer only: the default RuntimeInterposer trait pulls in a package that
        // is not available offline for Linux + Swift 6.3 (and the ARC metrics crash anyway).
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        // The broker's initializer takes a `Logger` (BrokerBenchmarks gives it one that discards);
        // the parent's own requirement, so both resolve to one checkout.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        /// Linux's unprivileged passthrough rules (`nvme_cmd_allowed`) in plain C: the reference.
        .target(name: "CKernelRules", path: "CKernelRules"),
        .executableTarget(
            name: "DecisionBenchmarks",
            dependencies: [
                "CKernelRules",
                .product(name: "NVMeGate", package: "nvmegate"),
                .product(name: "NVMeGateABI", package: "nvmegate"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "DecisionBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        /// Loading, compiling and reloading a 1,000-tenant policy.
        .executableTarget(
            name: "PolicyBenchmarks",
            dependencies: [
                .product(name: "NVMeGate", package: "nvmegate"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "PolicyBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        /// 4 KiB random I/O on the in-memory emulated controller through the gate, and the memcpy floor.
        .executableTarget(
            name: "EmulatorBenchmarks",
            dependencies: [
                .product(name: "NVMeGate", package: "nvmegate"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "EmulatorBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        /// One 4 KiB Read and one Identify through `nvmegate_ioctl` in-process and through a
        /// broker (NVMeBroker, started in the benchmark process): the socket hop.
        .executableTarget(
            name: "BrokerBenchmarks",
            dependencies: [
                .product(name: "NVMeGate", package: "nvmegate"),
                .product(name: "NVMeGateABI", package: "nvmegate"),
                .product(name: "NVMeBroker", package: "nvmegate"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "BrokerBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
    ]
)
