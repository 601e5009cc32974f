//! Start-up of credential sealing (`camera::seal`): load or create the key, check it against
//! the database's key check, and seal values an older Heldar stored in plaintext — the part of
//! it that needs the database.

use std::path::Path;

use crate::camera::seal::Sealer;
use crate::db::{self, Pool};

/// How long a process that lost the race for a new database's key waits for the winner's key
/// file to appear at the same path (the winner writes it right after its key check commits).
const SHARED_KEY_FILE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The sealer for this database. A missing or wrong key stops start-up with the file named.
///
/// Several processes may start at once on one new database (a fleet's first start): each with
/// no key file makes a key in memory and stores its check only if the database has none
/// (insert-if-absent), then reads the check back. The one whose check stands writes its key
/// file; the others never write theirs. One sharing the winner's key file path (one data
/// directory, or a shared mount) waits a moment for that file and uses it; one with a key file
/// path of its own is told to copy the key from the node that made it.
pub async fn open_sealer(key_file: &Path, pool: &Pool) -> anyhow::Result<Sealer> {
    let sealer = sealer_for(key_file, pool).await?;
    let plain = db::cameras::unsealed_values(pool).await?;
    if !plain.is_empty() {
        let sealed: Vec<_> = plain
            .into_iter()
            .map(|(id, column, v)| {
                let s = sealer.seal(&id, column, &v);
                (id, column, s)
            })
            .collect();
        db::cameras::store_sealed(pool, &sealed).await?;
        tracing::info!(
            values = sealed.len(),
            "sealed camera credentials stored in plaintext by an older Heldar"
        );
    }
    Ok(sealer)
}

async fn sealer_for(key_file: &Path, pool: &Pool) -> anyhow::Result<Sealer> {
    let in_file = Sealer::read_key_file(key_file)?;
    let key = in_file.unwrap_or_else(Sealer::new_key);
    let sealer = Sealer::from_key(key);
    let check = match db::meta::key_check(pool).await? {
        Some(c) => c,
        None => {
            db::meta::set_key_check(pool, &sealer.key_check()).await?;
            db::meta::key_check(pool).await?.ok_or_else(|| {
                anyhow::anyhow!("the database's key check vanished right after it was stored")
            })?
        }
    };
    match (in_file.is_some(), sealer.opens_key_check(&check)) {
        (true, true) => Ok(sealer),
        (true, false) => Err(Sealer::wrong_key_error(key_file).into()),
        (false, true) => {
            // The database's key now: keep it. If another process sharing the path wrote a
            // file meanwhile, that one is used only if it is the database's key too.
            let kept = Sealer::keep_key_file(key_file, key)?;
            let sealer = Sealer::from_key(kept);
            if sealer.opens_key_check(&check) {
                Ok(sealer)
            } else {
                Err(Sealer::wrong_key_error(key_file).into())
            }
        }
        (false, false) => {
            // Another process's key stands. If it shares this key file path, its file appears
            // as soon as its check committed; wait for it, bounded.
            let began = std::time::Instant::now();
            loop {
                if let Some(k) = Sealer::read_key_file(key_file)? {
                    let sealer = Sealer::from_key(k);
                    return if sealer.opens_key_check(&check) {
                        Ok(sealer)
                    } else {
                        Err(Sealer::wrong_key_error(key_file).into())
                    };
                }
                if began.elapsed() >= SHARED_KEY_FILE_WAIT {
                    let sealed = db::cameras::list(pool).await?.len();
                    return Err(Sealer::missing_key_error(key_file, sealed).into());
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}
