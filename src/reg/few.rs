//! A list that almost always holds zero or one item, in 16 bytes: an ao's
//! owned sources and its abort list (a `SmallVec` with one inline item
//! takes 24). More than one item moves the list to the heap.
//!
//! Invariant: `Many` holds two or more items (a list that shrinks back to
//! one or none returns inline).
#![forbid(unsafe_code)]

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Few<T> {
    #[default]
    Zero,
    One(T),
    Many(Box<Vec<T>>),
}

impl<T: Copy + PartialEq> Few<T> {
    pub fn as_slice(&self) -> &[T] {
        match self {
            Few::Zero => &[],
            Few::One(t) => std::slice::from_ref(t),
            Few::Many(v) => v,
        }
    }

    /// Appends `t` (the newest).
    pub fn push(&mut self, t: T) {
        *self = match std::mem::take(self) {
            Few::Zero => Few::One(t),
            Few::One(a) => Few::Many(Box::new(vec![a, t])),
            Few::Many(mut v) => {
                v.push(t);
                Few::Many(v)
            }
        };
    }

    /// Takes the newest item off.
    pub fn pop(&mut self) -> Option<T> {
        let (rest, t) = match std::mem::take(self) {
            Few::Zero => (Few::Zero, None),
            Few::One(a) => (Few::Zero, Some(a)),
            Few::Many(mut v) => {
                let t = v.pop();
                (Self::from_vec(*v), t)
            }
        };
        *self = rest;
        t
    }

    /// Removes the newest item equal to `t` (the newest then takes its
    /// place, as `swap_remove`); false if there is none.
    pub fn remove(&mut self, t: T) -> bool {
        let Some(pos) = self.as_slice().iter().rposition(|&x| x == t) else { return false };
        *self = match std::mem::take(self) {
            Few::Many(mut v) => {
                v.swap_remove(pos);
                Self::from_vec(*v)
            }
            _ => Few::Zero,
        };
        true
    }

    fn from_vec(v: Vec<T>) -> Few<T> {
        match v.len() {
            0 => Few::Zero,
            1 => Few::One(v[0]),
            _ => Few::Many(Box::new(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Few;

    const _: () = assert!(std::mem::size_of::<Few<std::num::NonZeroU64>>() == 16);

    #[test]
    fn few_keeps_order_and_goes_back_inline() {
        let mut f = Few::default();
        assert_eq!(f, Few::Zero);
        f.push(1u32);
        assert_eq!(f, Few::One(1));
        f.push(2);
        f.push(3);
        assert_eq!(f.as_slice(), &[1, 2, 3]);
        assert!(f.remove(1), "the newest equal item; the newest takes its place");
        assert_eq!(f.as_slice(), &[3, 2]);
        assert!(!f.remove(7));
        assert_eq!(f.pop(), Some(2));
        assert_eq!(f, Few::One(3), "one item: back inline");
        assert!(f.remove(3));
        assert_eq!(f, Few::Zero);
        assert_eq!(f.pop(), None);
    }
}
