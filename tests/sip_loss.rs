//! UDP with 10 % packet loss (SIPp's `-lost 10` drops packets it sends and receives): every
//! transaction still completes, through SIPp's retransmissions and ctid's transaction layer
//! answering a retransmitted request with its last response.

use ctid_testkit as common;

use common::*;

/// 200 calls at 20/s; each request retransmitted from 500 ms (doubling up to T2), up to 10
/// times, so a transaction fails only after 11 losses in a row.
const LOSSY: [&str; 14] = [
    "-t",
    "u1",
    "-m",
    "200",
    "-r",
    "20",
    "-lost",
    "10",
    "-max_retrans",
    "10",
    "-recv_timeout",
    "60000",
    "-timeout",
    "120s",
];

fn assert_all_200(run: &SippRun, what: &str, daemon: &Daemon) {
    assert!(
        run.ok() && run.successful == Some(200) && run.failed == Some(0),
        "{what} under 10 % loss: expected 200 successful calls and 0 failed, got {:?} successful, {:?} failed\n{}\n--- ctid log ---\n{}",
        run.successful,
        run.failed,
        run.report,
        daemon.log_tail(10_000)
    );
    // With ~800 packets at 10 % loss, SIPp must have retransmitted: otherwise no loss was
    // simulated and the test proved nothing.
    assert!(
        run.retransmissions.is_some_and(|n| n > 0),
        "{what}: SIPp reports no retransmissions, so -lost 10 did not take effect\n{}",
        run.report
    );
}

#[test]
fn options_survive_ten_percent_loss() {
    let env = TestEnv::new(&Settings::default());
    let mut daemon = env.start();
    let mut args = LOSSY.to_vec();
    args.push("-timeout_error");
    let run = sipp(env.path(), daemon.addr, "options.xml", &args);
    assert_all_200(&run, "OPTIONS", &daemon);
    daemon.assert_alive("after 200 lossy OPTIONS transactions");
    daemon.stop();
}

#[test]
fn authenticated_registers_survive_ten_percent_loss() {
    let env = TestEnv::new(&Settings::default());
    let mut daemon = env.start();
    let mut args = LOSSY.to_vec();
    args.extend([
        "-timeout_error",
        "-s",
        "1001",
        "-au",
        "1001",
        "-ap",
        "secret1001",
    ]);
    let run = sipp(env.path(), daemon.addr, "register_md5.xml", &args);
    assert_all_200(&run, "REGISTER (401 + authenticated 200)", &daemon);
    daemon.assert_alive("after 200 lossy REGISTER flows");
    daemon.stop();
}
