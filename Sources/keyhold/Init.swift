import ArgumentParser
import KeyholdOrchestration
import KeyholdStore

extension Keyhold {
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the state directory: a KEK (32 random bytes, mode 0600), an audit signing key and the database."
        )

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let state = global.state
            let kekID = try state.initialize()
            print("initialised \(state.path)")
            print("  KEK              \(state.defaultKEKPath) (id \(kekID))")
            print("  audit signing    \(state.signingKeyPath)")
            print("  database         \(Store.displayName(of: state.databaseLocation))")
            print("Back up the KEK and the signing key off this host: without the KEK no stored key can be decrypted.")
        }
    }
}
