import ArgumentParser

/// nvme-cli's log pages and the commands that fill them: effects-log, smart-log, error-log, fw-log, get-log, sanitize-log, self-test-log, sanitize, fw-download, fw-commit, device-self-test.
enum LogCommands {
    static let all: [any ParsableCommand.Type] = [
        LogEffectsCommand.self, LogSmartCommand.self, LogErrorCommand.self, LogFirmwareSlotCommand.self,
        LogGetLogCommand.self, LogSanitizeStatusCommand.self, LogSelfTestCommand.self, LogDeviceSelfTestCommand.self,
        LogSanitizeCommand.self, LogFirmwareDownloadCommand.self, LogFirmwareCommitCommand.self,
    ]
}
