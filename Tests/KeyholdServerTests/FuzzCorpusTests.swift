import Foundation
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// The fuzzers' seed corpus (`Tests/FuzzCorpus`, recorded from real clients by `deploy/record-fuzz-corpus.py`, and
/// the inputs the fuzzers found and `deploy/fuzz.sh` kept) runs through every target in the ordinary build: a parser
/// change that breaks on an input once found is caught by the suite, not only by the next fuzzing run.
@Suite(.offCooperativePool) struct FuzzCorpusTests {
    static let targets = [
        "request-body", "stream-usage", "answer-usage", "client-hello", "request-head", "dns-query", "exec-payload", "console-form",
    ]

    @Test(arguments: targets)
    func everyInputOfTheCorpusRunsThroughItsTarget(target: String) throws {
        let directory = BuildProducts.packageRoot + "/Tests/FuzzCorpus/" + target
        let inputs = try FileManager.default.contentsOfDirectory(atPath: directory)
        try #require(inputs.count >= 3, "the corpus of \(target) holds recorded inputs")
        let result = try ProcessRunner.run(
            BuildProducts.fuzz, [target, directory], environment: ["KEYHOLD_FUZZ_PLAN": BuildProducts.plansDirectory + "/managed.yaml"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdout.contains("\(target): \(inputs.count) inputs ran without a failure"), "\(result.output)")
    }

    @Test func anUnknownTargetIsRefusedWithTheListOfTargets() throws {
        let result = try ProcessRunner.run(BuildProducts.fuzz, ["no-such-target"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("request-body, stream-usage"))
    }
}
