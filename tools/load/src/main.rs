//! hayate-load: a load generator for BitTorrent trackers (BEP 15 UDP and
//! HTTP), std only. `run` keeps a churning peer population announcing for a
//! duration, closed loop or open loop; `fill` announces a peer set once;
//! `hashes` writes the info hashes a run would use (an allowlist);
//! `register` adds the users and torrents a private run uses to hayate
//! through its control API.
//!
//! Threads: main parses, spawns the senders, then reports (one table row per
//! `--report-every`, a summary at the end). Over UDP a sender is a thread
//! with its own socket and many requests in flight; over HTTP it is one
//! thread per connection (std has no readiness polling).

mod args;
mod hist;
mod http;
mod plan;
mod register;
mod stats;
mod udp;
mod workload;

use args::{Mode, Opts, Target};
use plan::Plan;
use stats::{Counters, Shared};
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use workload::{Lane, Shape, Workload};

/// How often the main thread wakes to check for the end of the run.
const TICK: Duration = Duration::from_millis(50);

fn main() {
    let o = match args::parse(std::env::args().skip(1).collect()) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            print!("{}", args::help());
            return;
        }
        Err(e) => {
            eprintln!("hayate-load: {e}");
            std::process::exit(2);
        }
    };
    let mut work = Workload::new(
        o.torrents,
        o.peers,
        o.skew,
        o.scrape_ratio,
        o.scrape_hashes,
        o.numwant,
        o.seed,
    );
    work.passkeys = o.passkeys;
    let work = Arc::new(work);
    let hashes_to = match (o.mode, o.print_hashes.as_deref()) {
        (Mode::Hashes, None) => Some("-"),
        (_, to) => to,
    };
    if let Some(path) = hashes_to {
        if let Err(e) = write_hashes(path, &work) {
            eprintln!("hayate-load: {path}: {e}");
            std::process::exit(1);
        }
    }
    let ok = match o.mode {
        Mode::Run => run(&o, &work),
        Mode::Fill => fill(&o, &work),
        Mode::Hashes => true,
        Mode::Register => register::run(&o, &work),
    };
    std::process::exit(if ok { 0 } else { 1 });
}

/// The info hashes as 40-hex lines into `path` (`-`: stdout).
fn write_hashes(path: &str, work: &Workload) -> std::io::Result<()> {
    let out: Box<dyn Write> = if path == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(path)?)
    };
    let mut f = std::io::BufWriter::new(out);
    for h in &work.hashes {
        for b in h {
            write!(f, "{b:02x}")?;
        }
        writeln!(f)?;
    }
    f.flush()
}

/// Spawns the senders; returns their join handles and hand-over slots.
fn spawn(
    o: &Opts,
    work: &Arc<Workload>,
    plan: &Arc<Plan>,
    shape: Shape,
) -> (Vec<std::thread::JoinHandle<()>>, Vec<Shared>) {
    let lanes = match o.target {
        Target::Udp(_) => o.threads,
        Target::Http(..) => o.threads * o.concurrency,
    };
    let mut handles = Vec::new();
    let mut slots = Vec::new();
    for i in 0..lanes {
        let shared: Shared = Arc::new(Mutex::new(Counters::default()));
        slots.push(Arc::clone(&shared));
        let lane = Lane::new(Arc::clone(work), i as u64, lanes as u64, shape);
        let plan = Arc::clone(plan);
        let builder = std::thread::Builder::new().name(format!("load-{i}"));
        let h = match &o.target {
            Target::Udp(addr) => {
                let (addr, k) = (*addr, work.scrape_hashes);
                builder.spawn(move || udp::run(addr, lane, &plan, shared, k))
            }
            Target::Http(addr, host) => {
                let conf = http::Conf {
                    addr: *addr,
                    host: host.clone(),
                    keepalive: o.keepalive,
                    passkey: (o.passkeys > 0).then(|| workload::passkey(i as u64 % o.passkeys)),
                };
                builder.spawn(move || http::run(&conf, lane, &plan, shared))
            }
        };
        handles.push(h.expect("spawn a sender thread"));
    }
    (handles, slots)
}

fn make_plan(o: &Opts, warmup: Duration, duration: Duration) -> Arc<Plan> {
    let lanes = match o.target {
        Target::Udp(_) => o.threads,
        Target::Http(..) => o.threads * o.concurrency,
    };
    Arc::new(Plan {
        start: std::time::Instant::now(),
        warmup_ns: warmup.as_nanos() as u64,
        end_ns: duration.as_nanos() as u64,
        timeout_ns: o.timeout.as_nanos() as u64,
        concurrency: o.concurrency,
        period_ns: o.rate.map(|r| 1e9 * lanes as f64 / r),
        stop: AtomicBool::new(false),
    })
}

fn describe(o: &Opts) -> String {
    let target = match &o.target {
        Target::Udp(a) => format!("udp {a}"),
        Target::Http(a, _) => format!(
            "http {a} keep-alive {}",
            if o.keepalive { "on" } else { "off" }
        ),
    };
    let shape = match (o.rate, &o.target) {
        (Some(r), _) => format!("open loop {r:.0} req/s"),
        (None, Target::Udp(_)) => format!(
            "closed loop {} threads x {} in flight",
            o.threads, o.concurrency
        ),
        (None, Target::Http(..)) => format!(
            "closed loop {} threads x {} connections",
            o.threads, o.concurrency
        ),
    };
    let private = match o.passkeys {
        0 => String::new(),
        n => format!(", private: {n} passkeys"),
    };
    format!(
        "{target}, {shape}; {} torrents (skew {}), {} peers, seed {}{private}",
        o.torrents, o.skew, o.peers, o.seed
    )
}

/// `run`: churn for the duration, report per interval and at the end.
fn run(o: &Opts, work: &Arc<Workload>) -> bool {
    println!(
        "hayate-load: {}; {} s, first {} s warm-up",
        describe(o),
        o.duration.as_secs_f64(),
        o.warmup.as_secs_f64()
    );
    let plan = make_plan(o, o.warmup, o.duration);
    let (handles, slots) = spawn(o, work, &plan, Shape::Churn);
    let mut total = Counters::default();
    let mut warm = false;
    let mut last = o.warmup;
    let mut rss = Vec::new();
    let row = |c: &Counters, from: Duration, to: Duration, rss: &mut Vec<u64>| {
        let p = stats::probe(o.tracker_pid, o.stats_url.as_ref());
        if let Some(kb) = p.rss_kb {
            rss.push(kb);
        }
        println!(
            "{}",
            stats::row(to.as_secs(), (to - from).as_secs_f64(), c, &p)
        );
        let _ = std::io::stdout().flush();
    };
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(TICK);
        let now = plan.start.elapsed();
        if !warm && now >= o.warmup {
            // Flushes during warm-up are dropped by the senders; this drops
            // anything handed over just before the line.
            stats::take(&slots);
            warm = true;
            if o.report_every.is_some() {
                println!("{}", stats::HEADER);
            }
        }
        if let Some(every) = o.report_every {
            if warm && now >= last + every && now < o.duration {
                let c = stats::take(&slots);
                total.merge(&c);
                row(&c, last, now, &mut rss);
                last = now;
            }
        }
    }
    for h in handles {
        let _ = h.join();
    }
    let end = plan.start.elapsed().min(o.duration.max(o.warmup));
    let c = stats::take(&slots);
    total.merge(&c);
    if o.report_every.is_some() && end > last + Duration::from_secs(1) {
        row(&c, last, end, &mut rss);
    }
    let secs = (end.saturating_sub(o.warmup)).as_secs_f64().max(1e-9);
    print!("{}", stats::summary(&total, secs));
    if rss.len() >= 3 {
        // Memory plateau: compare the last third with the middle third.
        let third = rss.len() / 3;
        let mid = rss[third..2 * third].iter().max().copied().unwrap_or(0);
        let last = rss[2 * third..].iter().max().copied().unwrap_or(0);
        let growth = (last as f64 / mid.max(1) as f64 - 1.0) * 100.0;
        println!(
            "tracker rss: max {} kB in the middle third, {} kB in the last third ({growth:+.1}%)",
            mid, last
        );
    }
    total.responses() > 0
}

/// `fill`: every slot announces `started` once.
fn fill(o: &Opts, work: &Arc<Workload>) -> bool {
    // Where the peers land, computed the way the lanes will compute it.
    let mut swarms: HashMap<usize, u32> = HashMap::new();
    let mut seeders = 0u64;
    for slot in 0..work.peers {
        let id = work.identity(slot, 0);
        *swarms.entry(id.torrent).or_default() += 1;
        seeders += id.seeder as u64;
    }
    let biggest = swarms.values().max().copied().unwrap_or(0);
    let small = swarms.values().filter(|&&n| n <= 2).count();
    println!(
        "hayate-load fill: {}; {} peers ({} seeders) into {} torrents ({} with 1-2 peers, biggest {})",
        describe(o),
        work.peers,
        seeders,
        swarms.len(),
        small,
        biggest
    );
    let plan = make_plan(o, Duration::ZERO, o.duration.max(Duration::from_secs(3600)));
    let (handles, slots) = spawn(o, work, &plan, Shape::Fill);
    for h in handles {
        let _ = h.join();
    }
    let secs = plan.start.elapsed().as_secs_f64();
    let c = stats::take(&slots);
    let p = stats::probe(o.tracker_pid, o.stats_url.as_ref());
    println!(
        "fill: {} of {} announces accepted in {:.1} s ({:.0}/s); errors: {} timeout, {} error reply, {} bad reply, {} io",
        c.announces,
        work.peers,
        secs,
        c.announces as f64 / secs,
        c.timeouts,
        c.error_replies,
        c.bad_replies,
        c.io_errors
    );
    for (text, n) in &c.messages {
        println!("  error reply {n}x: {text}");
    }
    if p.torrents.is_some() || p.rss_kb.is_some() {
        let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        println!(
            "tracker: torrents {}, peers {}, rss {} kB, threads {}",
            opt(p.torrents),
            opt(p.peers),
            opt(p.rss_kb),
            opt(p.threads)
        );
    }
    c.announces == work.peers
}
