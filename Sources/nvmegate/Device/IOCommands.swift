import ArgumentParser

/// nvme-cli's features, I/O and reservations: get-feature, set-feature, read, write, compare, write-zeroes, dsm, flush, resv-register, resv-acquire, resv-release, resv-report.
enum IOCommands {
    static let all: [any ParsableCommand.Type] = []
}
