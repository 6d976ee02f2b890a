import Foundation
import KeyholdTesting
import NIOSSL

// The fake provider as a program, for tests that run it where a test thread cannot: inside a network namespace of
// their own (`ip netns exec NS keyhold-fake-provider HOST PORT [CERT KEY]`). Prints `listening PORT` once bound,
// then serves until killed.
let arguments = CommandLine.arguments
guard arguments.count == 3 || arguments.count == 5, let port = Int(arguments[2]) else {
    FileHandle.standardError.write(Data("usage: keyhold-fake-provider HOST PORT [CERT.pem KEY.pem]\n".utf8))
    exit(2)
}
var tls: TLSConfiguration?
if arguments.count == 5 {
    tls = TLSConfiguration.makeServerConfiguration(
        certificateChain: try NIOSSLCertificate.fromPEMFile(arguments[3]).map { .certificate($0) },
        privateKey: .privateKey(try NIOSSLPrivateKey(file: arguments[4], format: .pem)))
}
let provider = try await FakeProvider.start(tls: tls, host: arguments[1], port: port)
FileHandle.standardOutput.write(Data("listening \(provider.port)\n".utf8))
while true { try await Task.sleep(for: .seconds(3600)) }
