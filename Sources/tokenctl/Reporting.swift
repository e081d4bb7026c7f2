import ArgumentParser
import TokenctlKit

/// Runs a command's work; reports a `BrokerClientError` or a `Failure` on stderr and exits
/// with its status. ArgumentParser's own errors (validation: 64) pass through.
func reporting(_ work: () throws -> Void) throws {
    do {
        try work()
    } catch {
        guard let failure = Failure(reporting: error) else { throw error }
        writeStandardError(failure.report)
        throw ExitCode(failure.exitStatus)
    }
}
