import CSystemd

#if canImport(Glibc)
    import Glibc
#endif

/// A listening socket handed over by the service manager (`LISTEN_FDS`, `LISTEN_FDNAMES`).
package struct ActivatedSocket: Sendable, Equatable {
    /// The descriptor, 3 onwards.
    package var fd: CInt
    /// `FileDescriptorName=` of the socket unit; the unit's name when not set.
    package var name: String
}

/// Socket activation through `sd_listen_fds_with_names(3)`.
package enum SocketActivation {
    /// The sockets passed to this process, in order. The `LISTEN_*` variables are removed from
    /// the environment (so children do not take them for theirs), and the descriptors are marked
    /// close-on-exec. Empty when the process was not socket-activated.
    package static func takeListeningSockets() -> [ActivatedSocket] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = sd_listen_fds_with_names(1, &names)
        defer {
            if let names {
                var index = 0
                while let name = names[index] {
                    free(name)
                    index += 1
                }
                free(names)
            }
        }
        guard count > 0 else { return [] }
        return (0..<Int(count)).map { index in
            let fd = SD_LISTEN_FDS_START + CInt(index)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            let name = names?[index].map { String(cString: $0) } ?? "unknown"
            return ActivatedSocket(fd: fd, name: name)
        }
    }

    /// Whether the descriptor is a listening AF_UNIX stream socket (`sd_is_socket_unix`).
    package static func isListeningUnixStream(_ fd: CInt) -> Bool {
        sd_is_socket_unix(fd, CInt(SOCK_STREAM.rawValue), 1, nil, 0) > 0
    }

    /// The path a Unix socket is bound to, for logs; nil for an abstract or unnamed socket.
    package static func boundPath(_ fd: CInt) -> String? {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0, address.sun_family == sa_family_t(AF_UNIX) else { return nil }
        let path = withUnsafeBytes(of: address.sun_path) { raw -> String? in
            guard let first = raw.first, first != 0 else { return nil }
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        return path
    }
}
