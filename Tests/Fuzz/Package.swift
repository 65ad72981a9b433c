// swift-tools-version: 6.1
// nvmegate's libFuzzer targets, in their own package so the library's manifest never
// depends on sanitizer flags (the Benchmarks/ pattern). One executable, `nvmegate-fuzz
// TARGET [libFuzzer options] [corpus directories]`, holds every target; `run.sh` builds it
// with AddressSanitizer and libFuzzer's coverage instrumentation and runs one target.
import PackageDescription

let package = Package(
    name: "nvmegate-fuzz",
    dependencies: [
        // The parent package by path, named explicitly (its folder's name differs between checkouts).
        .package(name: "nvmegate", path: "../.."),
        // The broker's initializer takes a `Logger` (`wire` gives it one that discards); the
        // parent's own requirement, so both resolve to one checkout.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "nvmegate-fuzz",
            dependencies: [
                .product(name: "NVMeGate", package: "nvmegate"),
                .product(name: "NVMeBroker", package: "nvmegate"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources",
            swiftSettings: [.enableExperimentalFeature("Lifetimes")]),
    ]
)
