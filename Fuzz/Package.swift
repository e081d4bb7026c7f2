// swift-tools-version:6.1
// The fuzz build: the daemon's request parser, router and event loop (the real Sources/BrokerServer,
// less SocketServer.swift) over a stub CredentialService, and the readers of the identity
// provider's replies (the real Sources/LiveProtocol), linked with libFuzzer and AddressSanitizer.
// Only swift-nio's HTTP/1.1 types and locks, swift-log and OpenSSL's libcrypto come in; not the
// engine, the store or the HTTPS client. Build and run with scripts/fuzz.sh; see README.md.
import PackageDescription

let package = Package(
    name: "tokenbroker-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // Symbolic links to the daemon's own sources.
        .target(name: "BrokerCore", dependencies: ["CSecretSlab", "Locks"]),
        .target(name: "CSecretSlab"),
        .target(name: "BrokerAPI"),
        .target(name: "CShims"),
        .target(name: "Locks"),
        .systemLibrary(name: "CLibcrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(name: "LiveProtocol", dependencies: ["BrokerCore", "CLibcrypto"]),
        .target(
            name: "BrokerServer",
            dependencies: [
                "BrokerCore", "BrokerAPI", "CShims", "Locks",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The service wrapper (swift-service-lifecycle); fuzz-loop binds and quiesces itself.
            exclude: ["SocketServer.swift"]),
        // The connection state machine and router, without a socket; the credential service it
        // serves from (StubService.swift).
        .executableTarget(
            name: "fuzz-http",
            dependencies: [
                "BrokerServer", "BrokerCore",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The event loop over a real Unix socket, many connections at once (StubService.swift is a link).
        .executableTarget(
            name: "fuzz-loop",
            dependencies: [
                "BrokerServer", "BrokerCore",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // One target per reader of the identity provider's replies, chosen by FUZZ_TARGET.
        .executableTarget(name: "fuzz-parsers", dependencies: ["LiveProtocol", "BrokerCore"]),
    ]
)
