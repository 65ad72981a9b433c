import ArgumentParser

/// nvme-cli's id-ctrl, id-ns, list-ns, ns-descs, and namespace management: create-ns, delete-ns, attach-ns, detach-ns, format.
enum IdentifyCommands {
    static let all: [any ParsableCommand.Type] = [
        IDCtrl.self, IDNS.self, ListNS.self, NSDescs.self,
        CreateNS.self, DeleteNS.self, AttachNS.self, DetachNS.self, Format.self,
    ]
}
