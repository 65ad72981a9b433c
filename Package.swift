// swift-tools-version: 6.1
// nvmegate: an access-control filter for NVMe passthrough with an ioctl-shaped API.
// Layers, arrows one way: NVMeSpec <- NVMeGate <- backends (NVMeEmulator, NVMeLinux) <- NVMeTargets
// <- NVMeGateABI, nvmegate.
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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        /// Latency percentiles for `nvmegate bench` (the CLI only; the library never depends on it).
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
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
        .target(
            name: "NVMeGateABI",
            dependencies: ["CNVMeGate", "NVMeSpec", "NVMeGate", "NVMeTargets"],
            swiftSettings: lifetimes),
        .executableTarget(
            name: "nvmegate",
            dependencies: [
                "NVMeSpec", "NVMeGate", "NVMeTargets",
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
            name: "IntegrationTests",
            dependencies: ["NVMeSpec", "NVMeGate", "nvmegate", "NVMeGateABI"],
            swiftSettings: lifetimes),
    ]
)
