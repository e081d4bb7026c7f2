import BrokerCore

/// A chunked request body, decoded as it arrives (RFC 9112, section 7.1): where decoding
/// stopped is kept, so that a body dribbled in small reads is not decoded again from the start.
struct ChunkedBody {
    enum Phase {
        case size
        case data(remaining: Int)
        case dataEnd
        case trailers
    }

    enum Step {
        case incomplete
        case failure(APIResponse)
        case done(length: Int)
    }

    /// Offset in the request's bytes where decoding resumes.
    var position: Int
    var phase = Phase.size
    var body: [UInt8] = []

    mutating func advance(_ bytes: UnsafeBufferPointer<UInt8>, limits: ServerLimits) -> Step {
        while true {
            switch phase {
            case .size:
                guard let end = lineEnd(bytes) else {
                    return bytes.count - position > 1024
                        ? .failure(.error(BrokerError(.badRequest, "malformed chunk size"), close: true)) : .incomplete
                }
                var size = 0
                var digits = 0
                var i = position
                while i < end.content, let digit = Self.hex(bytes[i]) {
                    size = size * 16 + digit
                    digits += 1
                    i += 1
                    if digits > 8 {
                        return .failure(
                            .error(
                                BrokerError(
                                    .payloadTooLarge, "request body is larger than \(limits.maxBodyBytes) bytes"),
                                close: true))
                    }
                }
                // Chunk extensions (`;name=value`) are allowed and ignored.
                while i < end.content, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 }
                guard digits > 0, i == end.content || bytes[i] == 0x3B else {
                    return .failure(.error(BrokerError(.badRequest, "malformed chunk size"), close: true))
                }
                if body.count + size > limits.maxBodyBytes {
                    return .failure(
                        .error(
                            BrokerError(.payloadTooLarge, "request body is larger than \(limits.maxBodyBytes) bytes"),
                            close: true))
                }
                position = end.next
                phase = size == 0 ? .trailers : .data(remaining: size)
            case .data(let remaining):
                let available = min(remaining, bytes.count - position)
                guard available > 0 else { return .incomplete }
                body.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[position..<position + available]))
                position += available
                phase = remaining == available ? .dataEnd : .data(remaining: remaining - available)
            case .dataEnd:
                guard let end = lineEnd(bytes) else {
                    return bytes.count - position >= 2
                        ? .failure(.error(BrokerError(.badRequest, "malformed chunk"), close: true)) : .incomplete
                }
                guard end.content == position else {
                    return .failure(.error(BrokerError(.badRequest, "malformed chunk"), close: true))
                }
                position = end.next
                phase = .size
            case .trailers:
                guard let end = lineEnd(bytes) else {
                    return bytes.count - position > limits.maxHeaderBytes
                        ? .failure(.error(BrokerError(.badRequest, "trailer fields are too large"), close: true))
                        : .incomplete
                }
                let empty = end.content == position
                position = end.next
                if empty { return .done(length: position) }
            }
        }
    }

    /// The end of the line starting at `position`: where its content ends (before CR LF or LF)
    /// and where the next line starts.
    private func lineEnd(_ bytes: UnsafeBufferPointer<UInt8>) -> (content: Int, next: Int)? {
        var i = position
        while i < bytes.count {
            if bytes[i] == 0x0A { return (i > position && bytes[i - 1] == 0x0D ? i - 1 : i, i + 1) }
            i += 1
        }
        return nil
    }

    private static func hex(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: Int(byte - 0x30)
        case 0x41...0x46: Int(byte - 0x41 + 10)
        case 0x61...0x66: Int(byte - 0x61 + 10)
        default: nil
        }
    }
}
