import ArgumentParser
import BrokerAPI
import TokenctlKit

struct Login: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Enroll an account by signing in (admin only).",
        discussion: """
            With a password: asks for it on the terminal without echo, or reads it from the \
            first line of standard input with --password-stdin. The daemon keeps it only with \
            --store-password (so it can sign in again by itself). In a realm that signs in with \
            rst (RST.srf, revival servers), the password is always kept: renewing the tickets needs it.

            With --skype: the login is a Skype name, which signs in at the realm's SkyLogin \
            server. The daemon keeps only its login hash, never the password; --store-password \
            and --ticket-method do not apply.

            With --browser: prints the realm's sign-in address. Open it, sign in, then paste \
            the final address of the blank page the browser ends on. With --cookies-stdin, \
            a second line carries the browser's cookies (MSPAuth=...; MSPProf=...; WLSSC=...).

            EXAMPLE
              tokenctl login alice@example.com
              echo "$PASSWORD" | tokenctl login carol@escargot.chat --realm escargot --password-stdin
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var enrollment: EnrollmentOptions

    @Flag(help: "Sign in with a browser instead of a password.")
    var browser = false

    @Flag(help: "The login is a Skype name, signing in at the realm's SkyLogin server.")
    var skype = false

    @Flag(help: "Read the password from the first line of standard input.")
    var passwordStdin = false

    @Flag(help: "Let the daemon keep the password to sign in again by itself.")
    var storePassword = false

    @Option(
        help: ArgumentHelp(
            "How the ssl-compact-ticket is obtained: oauth, or rst (needs --store-password).", valueName: "method"))
    var ticketMethod: String?

    @Flag(help: "With --browser: read the cookies from the next line of standard input.")
    var cookiesStdin = false

    func validate() throws {
        try enrollment.validate()
        if browser && passwordStdin {
            throw ValidationError("--browser takes no password; leave out --password-stdin.")
        }
        if browser && storePassword {
            throw ValidationError("--browser takes no password; leave out --store-password.")
        }
        if let ticketMethod, !["oauth", "rst"].contains(ticketMethod) {
            throw ValidationError("--ticket-method is oauth or rst.")
        }
        if ticketMethod == "rst" && !storePassword {
            throw ValidationError("--ticket-method rst needs --store-password.")
        }
        if cookiesStdin && !browser { throw ValidationError("--cookies-stdin goes with --browser.") }
        if skype {
            if browser { throw ValidationError("--skype signs in with a password; leave out --browser.") }
            if storePassword {
                throw ValidationError("--store-password does not apply to --skype: only the login hash is kept.")
            }
            if ticketMethod != nil { throw ValidationError("--ticket-method does not apply to --skype.") }
        }
    }

    func run() throws {
        try reporting {
            let client = global.client(timeout: EnrollmentOptions.timeout)
            let request =
                try skype ? skypeRequest(client) : browser ? browserRequest(client) : passwordRequest(client)
            try enrollment.enroll(request, with: client)
        }
    }

    private func passwordRequest(_ client: BrokerClient) throws -> EnrollRequest {
        // Fail before anyone types a password when the daemon is not there or the realm is not.
        let realm = try Enrollment.passwordRealm(named: enrollment.realm, from: client.realms())
        let rst = realm?.signIn == Enrollment.rstSignIn
        if let realm, rst {
            if ticketMethod != nil { throw Enrollment.ticketMethodInRSTRealm(realm) }
            writeStandardError(Enrollment.rstPasswordNote(realm) + "\n")
        }
        let password: String
        if passwordStdin {
            if Input.standardInputIsTerminal { writeStandardError("Password for \(enrollment.login) (echoed): ") }
            password = try Input.line("the password")
        } else {
            password = try Input.password(prompt: "Password for \(enrollment.login): ")
            guard !password.isEmpty else { throw Failure("the password is empty", exitStatus: ExitStatus.usage) }
        }
        var request = EnrollRequest.password(
            login: enrollment.login, password: password, name: enrollment.name, realm: enrollment.realm,
            storePassword: storePassword || rst)
        request.ticketMethod = ticketMethod
        return request
    }

    private func skypeRequest(_ client: BrokerClient) throws -> EnrollRequest {
        // Fail before anyone types a password when the daemon is not there or the realm is not.
        _ = try Enrollment.passwordRealm(named: enrollment.realm, from: client.realms())
        let password: String
        if passwordStdin {
            if Input.standardInputIsTerminal { writeStandardError("Password for \(enrollment.login) (echoed): ") }
            password = try Input.line("the password")
        } else {
            password = try Input.password(prompt: "Password for \(enrollment.login): ")
            guard !password.isEmpty else { throw Failure("the password is empty", exitStatus: ExitStatus.usage) }
        }
        return .skypePassword(
            skypeName: enrollment.login, password: password, name: enrollment.name, realm: enrollment.realm)
    }

    private func browserRequest(_ client: BrokerClient) throws -> EnrollRequest {
        let realm = try enrollment.chooseRealm(from: client.realms())
        guard let authorizeURL = realm.authorizeURL else {
            throw Failure(
                "realm \(realm.name) signs in with \(realm.signIn), with a password only: "
                    + "tokenctl login \(enrollment.login) --realm \(realm.name) --password-stdin",
                exitStatus: ExitStatus.usage)
        }
        writeStandardError(
            Enrollment.browserInstructions(login: enrollment.login, authorizeURL: authorizeURL, cookies: cookiesStdin))
        if Input.standardInputIsTerminal { writeStandardError("Final address: ") }
        let redirectURL = try Input.line("the final address")
        if cookiesStdin && Input.standardInputIsTerminal { writeStandardError("Cookies: ") }
        let cookies = cookiesStdin ? try Input.line("the cookies") : nil
        // The sign-in happened at this realm's address, so name it even when it is the default.
        return .redirectURL(
            login: enrollment.login, redirectURL: redirectURL, name: enrollment.name, realm: realm.name,
            cookies: cookies)
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Enroll an account with a refresh token obtained elsewhere (admin only).",
        discussion: """
            Reads the refresh token from the first line of standard input; with --cookies-stdin, \
            the cookies (MSPAuth=...; MSPProf=...; WLSSC=...) from the second.

            EXAMPLE
              echo "$REFRESH_TOKEN" | tokenctl import alice@example.com --refresh-token-stdin
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var enrollment: EnrollmentOptions

    @Flag(help: "Read the refresh token from the first line of standard input (required).")
    var refreshTokenStdin = false

    @Flag(help: "Read the cookies from the second line of standard input.")
    var cookiesStdin = false

    func validate() throws {
        try enrollment.validate()
        guard refreshTokenStdin else {
            throw ValidationError("Pass --refresh-token-stdin and the refresh token on standard input.")
        }
    }

    func run() throws {
        try reporting {
            if Input.standardInputIsTerminal { writeStandardError("Refresh token: ") }
            let refreshToken = try Input.line("the refresh token")
            if cookiesStdin && Input.standardInputIsTerminal { writeStandardError("Cookies: ") }
            let cookies = cookiesStdin ? try Input.line("the cookies") : nil
            let client = global.client(timeout: EnrollmentOptions.timeout)
            try enrollment.enroll(
                .refreshToken(
                    login: enrollment.login, refreshToken: refreshToken, name: enrollment.name,
                    realm: enrollment.realm, cookies: cookies),
                with: client)
        }
    }
}

/// What every enrollment names: the login, and optionally the account's name and realm.
struct EnrollmentOptions: ParsableArguments {
    /// Signing in makes several calls to the identity provider.
    static let timeout: Duration = .seconds(120)

    @Argument(help: "The Microsoft account's sign-in name, e.g. alice@example.com (with --skype: a Skype name).")
    var login: String

    @Option(help: "The realm to enroll in (default: the daemon's default realm).")
    var realm: String?

    @Option(help: "The account's name in the daemon (default: the login).")
    var name: String?

    func validate() throws {
        guard !login.isEmpty else { throw ValidationError("The login is empty.") }
        if name?.isEmpty == true { throw ValidationError("The --name is empty.") }
        if realm?.isEmpty == true { throw ValidationError("The --realm is empty.") }
    }

    func chooseRealm(from realms: [RealmInfo]) throws -> RealmInfo {
        try Enrollment.chooseRealm(named: realm, from: realms)
    }

    func enroll(_ request: EnrollRequest, with client: BrokerClient) throws {
        print(Enrollment.enrolled(try client.enroll(request)))
    }
}
