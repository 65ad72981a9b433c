import ArgumentParser

/// nvme-cli's id-ctrl, id-ns, list-ns, ns-descs, and namespace management: create-ns, delete-ns, attach-ns, detach-ns, format.
enum IdentifyCommands {
    static let all: [any ParsableCommand.Type] = []
}
