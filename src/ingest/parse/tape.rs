//! The simd-json path: a field view over one object of a simd-json tape, filled in one pass.

use simd_json::{Node, StaticNode};

use super::fields::{F, LevelArray, LevelResult, Msg, NF, ParseError, Val, field_of};

/// Index of the node after the value starting at `i`.
#[inline]
pub(super) fn skip(nodes: &[Node<'_>], i: usize) -> usize {
    match nodes[i] {
        Node::Object { count, .. } | Node::Array { count, .. } => i + 1 + count,
        _ => i + 1,
    }
}

/// Field values of one tape object.
pub(super) struct TapeMsg<'t, 'i> {
    nodes: &'t [Node<'i>],
    at: [u32; NF],
}

impl<'t, 'i> TapeMsg<'t, 'i> {
    #[inline]
    pub(super) fn collect(nodes: &'t [Node<'i>], obj: usize) -> Result<Self, ParseError> {
        let Node::Object { len, .. } = nodes[obj] else {
            return Err(ParseError::Shape);
        };
        let mut at = [0u32; NF];
        let mut i = obj + 1;
        for _ in 0..len {
            let Node::String(k) = nodes[i] else {
                return Err(ParseError::Shape);
            };
            let v = i + 1;
            if let Some(f) = field_of(k.as_bytes()) {
                at[f as usize] = v as u32;
            }
            i = skip(nodes, v);
        }
        Ok(TapeMsg { nodes, at })
    }
}

impl<'i> Msg<'i> for TapeMsg<'_, 'i> {
    #[inline]
    fn val(&self, f: F) -> Val<'i> {
        let i = self.at[f as usize] as usize;
        if i == 0 {
            return Val::Missing;
        }
        match self.nodes[i] {
            Node::String(s) => Val::Str(s),
            Node::Static(StaticNode::I64(v)) => Val::Int(v),
            Node::Static(StaticNode::U64(v)) if v <= i64::MAX as u64 => Val::Int(v as i64),
            Node::Static(StaticNode::Bool(b)) => Val::Bool(b),
            Node::Array { len, .. } => Val::Arr(i as u32, len as u32),
            Node::Object { .. } => Val::Obj(i as u32),
            _ => Val::Other,
        }
    }

    #[inline]
    fn for_levels(&self, side: LevelArray, mut f: impl FnMut(&'i str, &'i str) -> LevelResult) -> LevelResult {
        let mut i = side.handle as usize + 1;
        for _ in 0..side.len {
            match (self.nodes[i], self.nodes.get(i + 1), self.nodes.get(i + 2)) {
                (Node::Array { len: 2, .. }, Some(Node::String(p)), Some(Node::String(q))) => f(p, q)?,
                (Node::Array { len: 2, .. }, _, _) => return Err(ParseError::WrongType("level")),
                _ => return Err(ParseError::Shape),
            }
            i += 3;
        }
        Ok(())
    }
}
