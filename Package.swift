// swift-tools-version:6.1
import PackageDescription

let nio: [Target.Dependency] = [
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
    .product(name: "NIOHTTP1", package: "swift-nio"),
]

/// Fault switches for the systemd tests (a frozen event loop, to prove the watchdog) are compiled
/// into tokenbrokerd (its BrokerDaemon library) only when the build environment sets
/// TOKENBROKER_TESTING=1, as scripts/systemd-test.sh does. `make install` and plain `swift build`
/// never set it.
let testingFaults: [SwiftSetting] =
    Context.environment["TOKENBROKER_TESTING"] == "1" ? [.define("TOKENBROKER_TESTING")] : []

let package = Package(
    name: "tokenbroker",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tokenbrokerd", targets: ["tokenbrokerd"]),
        .executable(name: "tokenctl", targets: ["tokenctl"]),
        .executable(name: "livesim", targets: ["livesim"]),
        .library(name: "BrokerAPI", targets: ["BrokerAPI"]),
        .library(name: "LiveSim", targets: ["LiveSim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // Domain types and every decision; no I/O.
        .target(name: "BrokerCore", dependencies: ["CSecretSlab", "Locks"]),
        // The slabs that hold secrets' bytes outside malloc's heap (see its header).
        .target(name: "CSecretSlab"),
        // A lock ThreadSanitizer can see (LockedValue), for the daemon's and livesim's shared state.
        .target(name: "Locks"),
        // OpenSSL's libcrypto: 3DES for the SSO proof (swift-crypto has none), RSA and big numbers.
        .systemLibrary(name: "CLibcrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // Readers and writers of the identity provider's wire formats, and the SSO proof.
        .target(name: "LiveProtocol", dependencies: ["BrokerCore", "CLibcrypto"]),
        // Sign-in and refresh flows over HTTPS.
        .target(
            name: "LiveClient",
            dependencies: [
                "BrokerCore", "LiveProtocol", "Locks",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        // SQLite: schema, migrations, sealing of secret columns, keys.
        .target(
            name: "BrokerStore",
            dependencies: [
                "BrokerCore", "Locks",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // The refresh service and the in-memory credential cache.
        .target(
            name: "BrokerEngine",
            dependencies: [
                "BrokerCore", "BrokerAPI", "LiveClient", "BrokerStore", "Locks",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        // libsystemd: sd_notify, socket activation, native journal entries.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // The daemon's side of systemd: notifications, adopted sockets, a journal log handler.
        .target(
            name: "SystemdSupport",
            dependencies: ["CSystemd", .product(name: "Logging", package: "swift-log")]),
        // Small C shims for libc calls Swift cannot make (variadic prctl).
        .target(name: "CShims"),
        // The daemon's TOML configuration, resolved to core types; process hygiene.
        .target(
            name: "BrokerConfig",
            dependencies: ["BrokerCore", "BrokerAPI", "CShims", .product(name: "TOMLKit", package: "TOMLKit")]),
        // The public contract: wire types and a blocking client for the socket.
        .target(name: "BrokerAPI"),
        // HTTP/1.1 over the Unix socket, in front of any CredentialService (the engine in tokenbrokerd).
        .target(
            name: "BrokerServer",
            dependencies: [
                "BrokerCore", "BrokerAPI", "CShims", "Locks",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        // The identity-provider simulator. Shares no parser with the client side.
        .target(
            name: "LiveSim",
            dependencies: [
                "CLibcrypto", "Locks",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ] + nio),
        // The daemon: its wiring, the supervisor (status, watchdog and health check, reloads), logging.
        .target(
            name: "BrokerDaemon",
            dependencies: [
                "BrokerCore", "BrokerConfig", "BrokerStore", "LiveClient", "BrokerEngine", "BrokerServer", "BrokerAPI",
                "SystemdSupport",
                "CShims",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: testingFaults),
        // tokenctl's output, its exit statuses and its input helpers; FoundationEssentials only.
        .target(name: "TokenctlKit", dependencies: ["BrokerAPI"]),
        .executableTarget(
            name: "tokenbrokerd",
            dependencies: [
                "BrokerDaemon", "BrokerConfig",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "tokenctl",
            dependencies: [
                "TokenctlKit", "BrokerAPI", "BrokerCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "livesim",
            dependencies: [
                "LiveSim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "livesim-bench",
            dependencies: [
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ] + nio,
            path: "Benchmarks/LiveSimBench"),
        // HTTP/1.1 load over a Unix socket (plain epoll), and a daemon start-up timer: scripts/bench.sh.
        .target(name: "CEpoll", path: "Benchmarks/CEpoll"),
        .executableTarget(
            name: "socket-bench",
            dependencies: ["CEpoll", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/SocketBench"),
        // Writes a daemon database with many accounts, for the scale scenario of scripts/bench.sh.
        .executableTarget(
            name: "bench-seed",
            dependencies: [
                "BrokerCore", "BrokerStore", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/BenchSeed"),
        // The refresh machine's CPU per refresh at scale, with no I/O (README, "The scheduler at scale").
        .executableTarget(
            name: "scheduler-bench", dependencies: ["BrokerCore", "BrokerEngine", "CShims"],
            path: "Benchmarks/SchedulerBench"),
        // Shared test support: temporary directories, a livesim fixture, an HTTPS client.
        .target(
            name: "TestSupport",
            dependencies: [
                "LiveSim", "CShims", "Locks",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ] + nio,
            path: "Tests/TestSupport"),
        .testTarget(name: "BrokerCoreTests", dependencies: ["BrokerCore"]),
        // LiveClient and NIO for the SkyLogin client's test against an in-test login server.
        .testTarget(
            name: "LiveProtocolTests",
            dependencies: [
                "LiveProtocol", "LiveClient", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            resources: [.copy("Fixtures")]),
        // BrokerCore and LiveProtocol only to cross-check livesim's challenge and SSO proof checks with
        // the client's implementations.
        .testTarget(
            name: "LiveSimTests",
            dependencies: [
                "LiveSim", "TestSupport", "BrokerCore", "LiveProtocol", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        .testTarget(
            name: "BrokerStoreTests",
            dependencies: [
                "BrokerStore", "BrokerCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        .testTarget(name: "BrokerAPITests", dependencies: ["BrokerAPI"]),
        .testTarget(name: "TokenctlKitTests", dependencies: ["TokenctlKit", "BrokerAPI"]),
        // The request parser, the hot path's encoder and the routes table, without a socket; event
        // streams on a socket; the documentation's drift checks.
        .testTarget(
            name: "BrokerServerTests",
            dependencies: [
                "BrokerServer", "BrokerCore", "BrokerAPI", .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "SystemdSupportTests",
            dependencies: ["SystemdSupport", "CSystemd", .product(name: "Logging", package: "swift-log")]),
        // TOMLKit to read the example configuration's text as the tests' own reference.
        .testTarget(
            name: "BrokerConfigTests",
            dependencies: ["BrokerConfig", "BrokerCore", .product(name: "TOMLKit", package: "TOMLKit")]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "TestSupport", "BrokerAPI", "LiveSim", "BrokerCore", "LiveProtocol", "BrokerStore", "Locks",
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        .testTarget(
            name: "BrokerEngineTests",
            dependencies: [
                "TestSupport", "BrokerEngine", "BrokerStore", "LiveClient", "BrokerCore", "LiveSim", "Locks",
            ]),
    ]
)

// Every Swift target: a module may use only the modules it imports (and declares).
for target in package.targets where target.type != .system && !["CShims", "CEpoll"].contains(target.name) {
    target.swiftSettings = (target.swiftSettings ?? []) + [.enableUpcomingFeature("MemberImportVisibility")]
}
