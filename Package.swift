// swift-tools-version: 6.1
// nvmegate: an access-control filter for NVMe passthrough with an ioctl-shaped API.
// Layers, arrows one way: NVMeSpec <- NVMeGate <- backends (NVMeEmulator, NVMeLinux) <- NVMeTargets
// <- NVMeGateABI, nvmegate. The broker: NVMeGate <- NVMeBroker (server) <- nvmegate serve; the
// client side is C (CNVMeBrokerClient), linked into NVMeGateABI (`unix:PATH`) and the preload library.
import PackageDescription

/// Our own `~Escapable` views need lifetime annotations (a supported experimental feature
/// that swift-nio and swift-system also enable).
let lifetimes: [SwiftSetting] = [.enableExperimentalFeature("Lifetimes")]

let package = Package(
    name: "nvmegate",
    products: [
        .executable(name: "nvmegate", targets: ["nvmegate"]),
        .library(name: "NVMeGate", targets: ["NVMeSpec", "NVMeGate", "NVMeEmulator"]),
        /// Real Linux NVMe devices (links libnvme).
        .library(name: "NVMeLinux", targets: ["NVMeLinux"]),
        /// The C ABI (`nvmegate.h`) as `libNVMeGateABI.so`.
        .library(name: "NVMeGateABI", type: .dynamic, targets: ["NVMeGateABI"]),
        /// The broker (`nvmegate serve`) as a library, for daemons that embed it.
        .library(name: "NVMeBroker", targets: ["NVMeBroker"]),
        /// `libnvmegate-preload.so`: LD_PRELOAD it so unmodified nvme-cli and smartctl reach a broker.
        .library(name: "nvmegate-preload", type: .dynamic, targets: ["NVMeGatePreload"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        /// Latency percentiles for `nvmegate bench` (the CLI only; the library never depends on it).
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        /// The broker's counters in Prometheus's text format.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .target(name: "NVMeSpec", swiftSettings: lifetimes),
        .target(
            name: "NVMeGate",
            dependencies: [
                "NVMeSpec",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: lifetimes),
        .target(name: "NVMeEmulator", dependencies: ["NVMeSpec", "NVMeGate"], swiftSettings: lifetimes),
        /// libnvme 1.3 (Debian's libnvme-dev) as a module: its passthru calls and Identify/log layouts.
        .systemLibrary(name: "CLibNVMe", path: "Sources/CLibNVMe", pkgConfig: "libnvme", providers: [.apt(["libnvme-dev"])]),
        /// Real Linux NVMe devices (/dev/nvmeX, /dev/nvmeXnY, /dev/ngXnY) through libnvme.
        .target(name: "NVMeLinux", dependencies: ["NVMeSpec", "NVMeGate", "CLibNVMe"], swiftSettings: lifetimes),
        .target(name: "NVMeTargets", dependencies: ["NVMeGate", "NVMeEmulator", "NVMeLinux"], swiftSettings: lifetimes),
        .target(name: "CNVMeGate"),
        /// The broker: wire format, server, limits, counters (Sources/NVMeBroker/WireFormat.md).
        .target(
            name: "NVMeBroker",
            dependencies: [
                "NVMeSpec", "NVMeGate",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            exclude: ["WireFormat.md", "systemd"],
            swiftSettings: lifetimes),
        /// The broker's client, in C: no Swift runtime in the processes it is preloaded into.
        .target(name: "CNVMeBrokerClient"),
        /// Linked without Swift's startup object and with the Swift runtime static, so the tools
        /// it is preloaded into (nvme, smartctl) map no Swift library (there is no Swift in it).
        .target(
            name: "NVMeGatePreload", dependencies: ["CNVMeBrokerClient"],
            linkerSettings: [.unsafeFlags(["-nostartfiles", "-static-stdlib"])]),
        .target(
            name: "NVMeGateABI",
            dependencies: ["CNVMeGate", "CNVMeBrokerClient", "NVMeSpec", "NVMeGate", "NVMeTargets"],
            swiftSettings: lifetimes),
        .executableTarget(
            name: "nvmegate",
            dependencies: [
                "NVMeSpec", "NVMeGate", "NVMeTargets", "NVMeBroker",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: lifetimes),

        /// Compiled from libnvme-dev's and linux-libc-dev's headers: the layouts our views must match.
        .target(name: "CHeaderLayouts", path: "Tests/CHeaderLayouts"),
        .testTarget(name: "NVMeSpecTests", dependencies: ["NVMeSpec", "CHeaderLayouts"], swiftSettings: lifetimes),
        .testTarget(
            name: "NVMeGateTests", dependencies: ["NVMeSpec", "NVMeGate", "NVMeEmulator"], swiftSettings: lifetimes),
        .testTarget(
            name: "NVMeEmulatorTests", dependencies: ["NVMeSpec", "NVMeGate", "NVMeEmulator"], swiftSettings: lifetimes),
        .testTarget(
            name: "NVMeLinuxTests", dependencies: ["NVMeSpec", "NVMeGate", "NVMeLinux", "NVMeTargets"], swiftSettings: lifetimes),
        .testTarget(
            name: "NVMeBrokerTests",
            dependencies: ["NVMeSpec", "NVMeGate", "NVMeEmulator", "NVMeBroker", "CNVMeBrokerClient"],
            swiftSettings: lifetimes),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["NVMeSpec", "NVMeGate", "NVMeBroker", "nvmegate", "NVMeGateABI"],
            swiftSettings: lifetimes),
    ]
)
