#if TOKENBROKER_TESTING
    import BrokerServer
    import Foundation
    import Logging

    #if canImport(Glibc)
        import Glibc
    #endif

    /// Fault switches for the systemd tests. This file compiles to nothing unless the build
    /// environment set TOKENBROKER_TESTING=1 (see Package.swift), so a production build has no
    /// switch to flip; a testing build says so in `--version` and in its log.
    enum TestFaults {
        /// TOKENBROKER_TEST_FREEZE_EVENT_LOOP=SECONDS: that long after start, block the server's event
        /// loop for good, as a deadlock would. The watchdog must then kill the process.
        static func arm(server: SocketServer, logger: Logger) async {
            logger.warning("testing build: fault switches are compiled in")
            guard let raw = getenv("TOKENBROKER_TEST_FREEZE_EVENT_LOOP"), let seconds = Double(String(cString: raw))
            else { return }
            try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
            if Task.isCancelled { return }
            logger.warning("test fault: freezing the server's event loop")
            server.execute {
                while true { sleep(3600) }
            }
        }
    }
#endif
