import Metrics

/// Blob traffic for the metrics endpoint, by the key's first folder (`inputs`, `results`):
/// `kinema_blob_written_bytes_total{kind}` (stored by any blob store) and `kinema_blob_served_bytes_total{kind}`
/// (sent to clients as signed downloads, ranges counted as sent).
public enum BlobMetrics {
    public static func written(_ bytes: Int64, key: String) {
        Counter(label: "kinema_blob_written_bytes_total", dimensions: [("kind", kind(of: key))]).increment(by: bytes)
    }

    public static func served(_ bytes: Int64, key: String) {
        Counter(label: "kinema_blob_served_bytes_total", dimensions: [("kind", kind(of: key))]).increment(by: bytes)
    }

    static func kind(of key: String) -> String {
        key.split(separator: "/").first.map(String.init) ?? "other"
    }
}
