//! Start-up of credential sealing (`camera::seal`): load or create the key, check it against
//! the database's key check, and seal values an older Heldar stored in plaintext — the part of
//! it that needs the database.

use std::path::Path;

use crate::camera::seal::Sealer;
use crate::db::{self, Pool};

/// The sealer for this database. A missing or wrong key stops start-up with the file named.
pub async fn open_sealer(key_file: &Path, pool: &Pool) -> anyhow::Result<Sealer> {
    let check = db::meta::key_check(pool).await?;
    let (sealer, new_check) = Sealer::load(key_file, check.as_deref())?;
    if let Some(c) = new_check {
        db::meta::set_key_check(pool, &c).await?;
    }
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
