import Foundation
import KeyholdStore
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// `--database` URLs: what is refused, and that a password never reaches a message.
@Suite(.offCooperativePool) struct DatabaseURLTests {
    @Test func badURLsAreRefusedInOneLineWithoutThePassword() throws {
        let secret = "pw-canary-\(UUID().uuidString.prefix(8))"
        for url in [
            "postgresql://keyhold:\(secret)@127.0.0.1:5432", "postgresql://:\(secret)@127.0.0.1/keyhold",
            "postgresql://keyhold:\(secret)@127.0.0.1:5432/keyhold?sslmode=sometimes", "POSTGRESQL://keyhold:\(secret)@/keyhold",
        ] {
            #expect(Store.isDatabaseURL(url), "\(url) is meant as a URL, whatever the scheme's case")
            #expect {
                try Store.open(location: url)
            } throws: { error in
                let message = "\(error)"
                return error is StoreError && !message.contains(secret) && !message.contains("\n")
            }
        }
        #expect(Store.displayName(of: "postgresql://keyhold:\(secret)@db.internal:5432/keyhold") == "postgresql://keyhold@db.internal:5432/keyhold")
    }

    @Test func aWrongPasswordAServerThatIsDownAndTLSItCannotDoAreClearErrors() throws {
        let cluster = try SharedTestPostgres.get()
        let (_, url) = try SharedTestPostgres.makeDatabase(prefix: "url")
        let wrong = url.replacingOccurrences(of: cluster.password, with: "wrong-\(cluster.password)")
        #expect {
            try Store.open(location: wrong)
        } throws: { error in
            "\(error)".contains("password authentication failed") && !"\(error)".contains(cluster.password)
        }
        #expect {
            try Store.open(location: url + "?sslmode=require")
        } throws: { error in
            error is StoreError && !"\(error)".contains(cluster.password)
        }
        let free = try LoopbackPort.free()
        let down = url.replacingOccurrences(of: ":\(cluster.port)/", with: ":\(free)/")
        #expect {
            try Store.open(location: down)
        } throws: { error in
            "\(error)".contains("the connection failed") && !"\(error)".contains(cluster.password)
        }
    }
}
