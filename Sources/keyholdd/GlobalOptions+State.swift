import KeyholdCommandLine
import KeyholdOrchestration

extension GlobalOptions {
    /// The state directory's files, with the database this command uses.
    var state: StateDirectory { StateDirectory(path: stateDir, database: databaseURL) }
}
