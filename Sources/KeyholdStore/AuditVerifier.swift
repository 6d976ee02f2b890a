import KeyholdCore

/// The outcome of checking the audit chain.
public struct AuditVerification: Sendable, Equatable {
    /// Records checked.
    public var count: Int64
    /// The last record's hash (the head of the chain).
    public var headHash: String
    /// The first problem found, or nil when the log is intact.
    public var problem: AuditProblem?
}

/// The first bad record in the audit log.
public struct AuditProblem: Sendable, Equatable, CustomStringConvertible {
    /// The sequence number of the first record that does not check.
    public var seq: Int64
    public var message: String
    public var description: String { "record \(seq): \(message)" }
}

extension StoreTransaction {
    /// Recomputes the chain from the first record: sequence numbers without gaps, each record's
    /// `prev_hash` equal to the previous record's hash, each hash equal to the hash of its content.
    /// Streams rows, so it checks large logs in constant memory.
    public func verifyAudit() throws -> AuditVerification {
        var expectedSeq: Int64 = 1
        var previousHash = AuditRecord.genesisHash
        var problem: AuditProblem?
        try forEachAuditBatch { batch in
            for record in batch where problem == nil {
                if record.seq > expectedSeq {
                    let missing = record.seq - 1 == expectedSeq ? "record \(expectedSeq) is" : "records \(expectedSeq)–\(record.seq - 1) are"
                    problem = AuditProblem(seq: expectedSeq, message: "\(missing) missing (deleted)")
                } else if record.prevHash != previousHash {
                    problem = AuditProblem(
                        seq: record.seq,
                        message: "its prev_hash does not match the hash of record \(expectedSeq - 1): records were deleted, inserted or reordered")
                } else if AuditLog.hash(of: record) != record.hash {
                    problem = AuditProblem(seq: record.seq, message: "its content does not match its hash: the record was changed")
                } else {
                    previousHash = record.hash
                    expectedSeq += 1
                }
            }
            return problem == nil
        }
        return AuditVerification(count: expectedSeq - 1, headHash: previousHash, problem: problem)
    }

    /// Hands every record to `body` in sequence order, `batchSize` at a time, in constant memory, until `body`
    /// returns false.
    public func forEachAuditBatch(batchSize: Int = 1000, _ body: ([AuditRecord]) throws -> Bool) throws {
        var after: Int64 = Int64.min
        while true {
            let batch = try rows("SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", after, batchSize).map(AuditLog.record(from:))
            guard let last = batch.last, try body(batch), batch.count == batchSize else { return }
            after = last.seq
        }
    }

    /// The hash of record `seq`, if present.
    public func auditHash(ofSeq seq: Int64) throws -> String? {
        try value("SELECT hash FROM audit WHERE seq = ?", seq)
    }

    /// The last record's sequence number and hash.
    public func auditHead() throws -> (seq: Int64, hash: String) {
        guard let row = try row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1") else {
            return (0, AuditRecord.genesisHash)
        }
        return (row["seq"], row["hash"])
    }
}
