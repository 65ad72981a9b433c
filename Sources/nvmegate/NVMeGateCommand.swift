import ArgumentParser

/// `nvmegate`: the command line of the NVMe passthrough gate.
@main
struct NVMeGateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nvmegate",
        abstract: "Filter NVMe passthrough commands: decide them as a policy and a controller's effects log say.",
        discussion: "The device commands take nvme-cli's names, arguments and flags; every command they send goes through the policy.",
        version: "0.1.0",
        subcommands: [PolicyCommand.self] + IdentifyCommands.all + LogCommands.all + IOCommands.all
            + [AdminPassthru.self, IOPassthru.self, BenchCommand.self, ServeCommand.self, MetricsCommand.self])
}

/// `nvmegate policy`: check, explain and lint policies.
struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Check commands against a policy, explain a verdict, lint a policy file.",
        subcommands: [PolicyCheck.self, PolicyExplain.self, PolicyLint.self, PolicyStats.self])
}
