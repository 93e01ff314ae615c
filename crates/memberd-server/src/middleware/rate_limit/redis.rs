//! The cluster's rate-limit buckets in Redis (`--redis-url`): the same GCRA as the
//! PostgreSQL buckets, in a script that runs whole on the Redis server, on its clock.

use memberd_store::TokensTaken;
use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

/// KEYS[1]: the bucket; ARGV: want, interval and tolerance (seconds). Returns the tokens given
/// and the debt after the take (as a string: Redis would truncate a number to an integer).
/// The key expires once the bucket would be full again, so unused buckets take no memory.
const TAKE: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local want = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
local base = math.max(tat, now)
local free = math.floor((tolerance - (base - now)) / interval + 0.000001)
local granted = math.min(want, math.max(free, 0))
local new_tat = base + granted * interval
if granted > 0 then
  redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
end
return {granted, string.format('%.6f', new_tat - now)}
";

pub(crate) struct RedisBuckets {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    script: redis::Script,
}

/// Keys of memberd's buckets, apart from anything else kept in the same Redis.
const PREFIX: &str = "memberd:rate:";

impl RedisBuckets {
    /// Checks the URL; connects on first use (see `ping`).
    pub(crate) fn new(url: &str) -> Result<RedisBuckets, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        Ok(RedisBuckets {
            client,
            connection: OnceCell::new(),
            script: redis::Script::new(TAKE),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, String> {
        self.connection
            .get_or_try_init(|| ConnectionManager::new(self.client.clone()))
            .await
            .cloned()
            .map_err(|e| e.to_string())
    }

    /// Whether Redis answers (checked once at start).
    pub(crate) async fn ping(&self) -> Result<(), String> {
        let mut connection = self.connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    pub(crate) async fn take(
        &self,
        bucket: &str,
        want: u32,
        interval: f64,
        tolerance: f64,
    ) -> Result<TokensTaken, String> {
        let mut connection = self.connection().await?;
        let (granted, debt): (u32, String) = self
            .script
            .key(format!("{PREFIX}{bucket}"))
            .arg(want)
            .arg(interval)
            .arg(tolerance)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| e.to_string())?;
        Ok(TokensTaken {
            granted,
            debt_secs: debt
                .parse()
                .map_err(|_| format!("unexpected debt {debt:?}"))?,
        })
    }
}
