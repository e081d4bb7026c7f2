/// Which account a command means when it is given no name.
package enum AccountChoice {
    /// The one account there is (of those the caller may read); otherwise a failure that says
    /// what to do: enroll one (exit 3), or name one of several (exit 64).
    package static func only(_ names: [String]) throws(Failure) -> String {
        switch names.count {
        case 1:
            return names[0]
        case 0:
            throw Failure(
                "no account to read: none is enrolled, or none you may read", hint: "Enroll one: tokenctl login NAME",
                exitStatus: ExitStatus.notEnrolled)
        default:
            throw Failure(
                "\(names.count) accounts; name one: \(names.sorted().joined(separator: ", "))",
                exitStatus: ExitStatus.usage)
        }
    }
}
