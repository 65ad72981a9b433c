#if canImport(Glibc)
import Glibc
#endif

// nvmegate-fuzz TARGET [libFuzzer options] [corpus directories]
//
// Every target in one binary: the first argument picks the target, the rest go to
// libFuzzer's driver (LLVMFuzzerRunDriver, from the fuzzer runtime without its main). The
// choice is also put in NVMEGATE_FUZZ_TARGET, which names the target when libFuzzer runs
// the binary again without it (-minimize_crash, -merge, -fork).

/// The targets by name, in `run.sh --list` order.
let targets: [(name: String, run: (UnsafeRawBufferPointer) -> Void)] = [
    ("decide", DecideTarget.run),
    ("ioctl", IoctlTarget.run),
    ("policy", PolicyTarget.run),
    ("emulator", EmulatorTarget.run),
    ("ranges", RangesTarget.run),
    ("wire", WireTarget.run),
]

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

nonisolated(unsafe) var selected: (UnsafeRawBufferPointer) -> Void = { _ in }

let arguments = CommandLine.arguments
if arguments.count > 1 && arguments[1] == "--list" {
    for target in targets { print(target.name) }
    exit(0)
}
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
if arguments.count > 1, let target = targets.first(where: { $0.name == arguments[1] }) {
    selected = target.run
    setenv("NVMEGATE_FUZZ_TARGET", target.name, 1)
    // libFuzzer sees the program name followed by everything after the target's name.
    argc -= 1
    argv = CommandLine.unsafeArgv + 1
    argv![0] = CommandLine.unsafeArgv[0]
} else if let name = getenv("NVMEGATE_FUZZ_TARGET").map({ String(cString: $0) }),
          let target = targets.first(where: { $0.name == name }) {
    selected = target.run
} else {
    report("usage: nvmegate-fuzz TARGET [libFuzzer options] [corpus directories]; --list names the targets\n")
    exit(2)
}
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    selected(UnsafeRawBufferPointer(start: data, count: size))
    return 0
})
