-- rusto schema, version 3: A/B paper variants. Every position and hour-expectancy sample belongs to a trader:
-- 'base' (the configuration itself) or a named [[variants]] entry.
ALTER TABLE positions ADD COLUMN variant TEXT NOT NULL DEFAULT 'base';
ALTER TABLE hour_expectancy ADD COLUMN variant TEXT NOT NULL DEFAULT 'base';
CREATE INDEX positions_variant ON positions(variant);
