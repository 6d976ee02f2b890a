import ArgumentParser
import KeyholdCommandLine
import KeyholdOrchestration
import KeyholdStore

extension Keyholdd {
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: DaemonCommand.initialize.rawValue, abstract: DaemonCommand.initialize.abstract
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
