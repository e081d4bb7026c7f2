// swift-tools-version:6.1
// The fuzz build: the daemon's request parser and router (the real Sources/BrokerServer, less
// the socket and its event loop) over a stub CredentialService, linked with libFuzzer. Only
// swift-nio's HTTP/1.1 types and locks and swift-log come in; not the engine, the store or the
// HTTPS client. Build and run with scripts/fuzz.sh; see docs/SECURITY.md.
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
        .target(name: "BrokerCore"),
        .target(name: "BrokerAPI"),
        .target(
            name: "BrokerServer",
            dependencies: [
                "BrokerCore", "BrokerAPI",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["SocketServer.swift", "ServerLoop.swift", "ServerLoop+Events.swift"]),
        // The harness, and the credential service it serves from (StubService.swift).
        .executableTarget(
            name: "fuzz-http",
            dependencies: [
                "BrokerServer", "BrokerCore",
                .product(name: "Logging", package: "swift-log"),
            ]),
    ]
)
