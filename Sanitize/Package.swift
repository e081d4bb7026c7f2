// swift-tools-version:6.1
// The sanitizer build (scripts/sanitize.sh): the daemon's code that handles raw memory, built with
// AddressSanitizer or ThreadSanitizer together with its own tests. Every target is a symbolic link
// to the package's own sources and tests; nothing here is a copy:
//   BrokerCore    the secret slabs (CSecretSlab, C) and the refresh machine;
//   BrokerServer  the event loop over its own buffers, the request parser, event streams, and the
//                 C shims for its system calls;
//   BrokerAPI     the wire types and the blocking client;
//   LiveProtocol  the readers of the identity provider's replies, and libcrypto through CLibcrypto;
//   SystemdSupport  journal entries written from a temporary buffer, sd_notify, adopted sockets.
// The engine, the store, the HTTPS client and livesim are left out: they keep no raw buffers of
// their own (a few withUnsafeBytes copies in the store; livesim's certificates and libcrypto are
// sanitized by `scripts/sanitize.sh ... full`), Swift 6's checks find data races in them at
// compile time, and with them the build is the whole package and every dependency (see the
// README's "Sanitizers").
import PackageDescription

let package = Package(
    name: "tokenbroker-sanitize",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        .target(name: "BrokerCore", dependencies: ["CSecretSlab", "Locks"]),
        .target(name: "CSecretSlab"),
        .target(name: "Locks"),
        .systemLibrary(name: "CLibcrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(name: "LiveProtocol", dependencies: ["BrokerCore", "CLibcrypto"]),
        .target(name: "CShims"),
        .target(name: "BrokerAPI"),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .target(
            name: "SystemdSupport",
            dependencies: ["CSystemd", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "BrokerServer",
            dependencies: [
                "BrokerCore", "BrokerAPI", "CShims", "Locks",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        .testTarget(name: "BrokerCoreTests", dependencies: ["BrokerCore"]),
        .testTarget(name: "BrokerAPITests", dependencies: ["BrokerAPI"]),
        // Without the documentation's drift checks, which read the README beside the sources.
        .testTarget(
            name: "BrokerServerTests",
            dependencies: [
                "BrokerServer", "BrokerCore", "BrokerAPI", .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["DocsDriftTests.swift"]),
        .testTarget(
            name: "SystemdSupportTests",
            dependencies: ["SystemdSupport", "CSystemd", .product(name: "Logging", package: "swift-log")]),
        // Without the SkyLogin client's test, which needs the HTTPS client's module (LiveClient).
        .testTarget(
            name: "LiveProtocolTests",
            dependencies: ["LiveProtocol"],
            exclude: ["SkyLoginClientTests.swift"],
            resources: [.copy("Fixtures")]),
    ]
)
